description = "Li, Chen, Zheng 2020: colourisation — predict the G and B channels from R"
label = "ColorMe"
# channel: the RGB channel the encoder sees (replicated to 3); the other two are predicted.
pretext = dict(type="ColorMe", crop=768, channel=0, decoder_channels=64)
