"""The model layer: Keras-free descriptions of models and the names of their parts."""
