package backoff

// WaitLate waits until every Redis script run of b that outlived its
// deadline has ended (goleak counts them otherwise).
func WaitLate(b *RedisBucket) { b.late.Wait() }
