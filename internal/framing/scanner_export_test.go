package framing

// ScannerBufCap reports the capacity of the scanner's frame buffer, so the
// external tests can check that rejected preludes allocate nothing.
func ScannerBufCap(s *Scanner) int { return cap(s.buf) }
