"""Request and response codecs: each protocol turns a body into columns and a prediction back.

``tabular`` holds the body shapes several protocols share (JSON records or arrays, MLflow's
``dataframe_split``, CSV); ``native`` is the ``/score`` contract; ``vertex`` the Vertex AI
reply. A new protocol is one new module here over the same predictor.
"""
