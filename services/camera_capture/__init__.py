"""Camera capture stage: frames from a camera or file, motion gate, JPEG encode."""
