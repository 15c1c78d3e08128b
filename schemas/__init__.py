"""Message models and the topic registry of edgegw. No I/O lives here."""
