package store

// SetAfterProbe makes f run between every probe and its COPY.
func (s *Store) SetAfterProbe(f func()) { s.afterProbe = f }
