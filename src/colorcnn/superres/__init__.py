"""Super-resolution: upscale images of any size, tile by tile, with a trained superres-y
model (the shipped `upscale-x2` and `upscale-x4`) or superres-rgb model. What such a network
predicts and how it is scored (the course's 24-colour protocol, the bicubic residual, the
luminance residual) is in colorcnn.formulations.superres."""
