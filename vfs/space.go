package vfs

// Space returns the capacity set with SetCapacity (-1 when unlimited) and
// the bytes linked files hold now, so a test can report free space the
// way statfs would (capacity - used) for a Mem.
func (m *Mem) Space() (capacity, used int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.f.capacity, m.used()
}
