"""audio-capture stage: turns a microphone or a sound file into PCM16 mono 16 kHz chunks.

`pcm` holds the pure part (decode, resample, chunk, validate a received chunk);
the MQTT shell that publishes `audio/<mic>/chunk` lives beside it.
"""
