package verify

import "errors"

// ErrNotIntact is what every Problem unwraps to: something did not verify.
// Report.Err returns the first problem, so callers that only want an error
// can write `if err := rep.Err(); errors.Is(err, verify.ErrNotIntact)`.
var ErrNotIntact = errors.New("verify: not intact")

// Unwrap makes errors.Is(p, ErrNotIntact) true.
func (p *Problem) Unwrap() error { return ErrNotIntact }

// Err returns the first problem, or nil when everything verified.
func (r *Report) Err() error {
	if p := r.First(); p != nil {
		return p
	}
	return nil
}
