"""Student CNN: backbones, LGConv, decoder, heads."""
