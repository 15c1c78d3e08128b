"""What two stages share about their media: the wire formats of the JPEG frame and the PCM
chunk, and the measured video levels table both video stages publish levels from."""
