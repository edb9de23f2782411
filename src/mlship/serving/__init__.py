"""The HTTP layer: settings, request/response codecs per protocol, the app, metrics, probes."""
