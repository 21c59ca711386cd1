"""Family-independent learning pieces: layers and scalers (:mod:`metainv.nn.layers`), the one
training loop with resumable checkpoints and the data split (:mod:`metainv.nn.train`), and the
model artifacts with their family registry (:mod:`metainv.nn.artifacts`)."""
