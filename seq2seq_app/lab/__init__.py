"""The RNN lab: small, seeded experiments on recurrent cells that return plain data.

`gradients` (how far back the loss reaches), `memory` (recall at a distance), `inside` (the
shipped models' gates per token) and `depth` (layers and directions). Each function returns
JSON-ready dicts; `python -m training.lab` and the app's Lab tab only present them.
"""
