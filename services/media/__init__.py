"""Wire formats two stages share: the JPEG frame and its metadata, the PCM chunk."""
