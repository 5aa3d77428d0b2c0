_base_ = "./weights.py"
# The paper's name for the same strategy (Tables 1 and 2), kept for its suites and for earlier commands
label = "ImageNet Pre-trained"
