"""The online prediction service (`salesmon serve`) and its request log."""
