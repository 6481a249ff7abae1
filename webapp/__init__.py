"""The Django studio. Until the studio issue lands this is a thin placeholder: the engine
(`python -m engine`) is the product today."""
