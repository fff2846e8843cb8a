"""Super-resolution with the course's networks: upscale images of any size, tile by tile,
with a trained superres-rgb model. What such a network predicts and how it is scored (the
course's 24-colour protocol, and the bicubic residual) is in colorcnn.formulations.superres."""
