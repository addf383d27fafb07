package segment

// Bytes returns how many bytes the batch wrote to the file: its block
// frames and its commit frame. (Engine metrics use it.)
func (fl *Flushed) Bytes() int { return len(fl.buf) }
