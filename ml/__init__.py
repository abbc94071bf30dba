"""EduPulse dropout-risk model: pure PyTorch + numpy, no Django (STYLE rule 9).

Submodules are imported explicitly (``from ml.inference import Scorer``) so that
importing ``ml`` never pulls in torch at Django start-up.
"""
