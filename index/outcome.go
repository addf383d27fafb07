package index

// Outcome returns the record's outcome bit (vellum.StatusBit of its
// status; 0 for none). Engine metrics count records by it.
func (k *Keys) Outcome() uint8 { return k.outcome }
