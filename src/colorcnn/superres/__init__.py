"""Super-resolution with the same networks: the course's 24-colour protocol, and real
upscaling that predicts the detail bicubic interpolation misses."""
