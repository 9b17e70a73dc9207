package mirror

// Resyncing reports whether this copy is the source of a resync that has
// not finished (between Connect's BeginResync and FinishResync).
func (m *Mirror) Resyncing() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resyncing
}

// Blocked says why this copy may neither go live nor resync (a split
// brain or a refused Decide waiting for the operator); "" when it may.
func (m *Mirror) Blocked() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blocked
}
