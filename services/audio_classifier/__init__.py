"""audio-classifier stage: PCM chunks in, YAMNet class scores and sound events out.

`frontend` computes YAMNet's log-mel patches in numpy, `yamnet` runs the model
through the inference layer, and `sound_events` turns per-patch scores for the
classes a site cares about into new/update/end events with hysteresis.
"""
