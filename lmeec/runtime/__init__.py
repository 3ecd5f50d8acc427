"""Runtime: the exported stages driven frame by frame with preallocated buffers and fixed-size memory."""
