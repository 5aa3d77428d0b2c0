description = "Noroozi & Favaro 2016: solve 3×3 jigsaw puzzles over P max-Hamming permutations"
label = "Jigsaw Puzzles"
# crop is the puzzle's side (presets scale it); tiles = crop / 3 minus a random jitter of 15 % per cell.
pretext = dict(type="Jigsaw", crop=768, num_permutations=100, jitter=0.15, embed_dim=512, hidden_dim=1024)
