package server

import (
	"slices"
)

// buildAuth makes the authenticator of the config's principals plus
// stored ones.
func (s *Server) buildAuth(stored []StoredToken) (*Authenticator, error) {
	a := s.cfg.Auth
	a.Tokens = slices.Clone(a.Tokens)
	for _, t := range stored {
		a.Tokens = append(a.Tokens, t.Config())
	}
	return NewAuthenticator(&a, s.lookupEnv)
}

// SetStoredTokens replaces the principals that come from the data
// directory's token file, keeping the config's: requests from then on are
// checked against the new set, so a revoked token stops working at once.
// On error (a name or token that clashes with the config's) the old set
// stays.
func (s *Server) SetStoredTokens(stored []StoredToken) error {
	a, err := s.buildAuth(stored)
	if err != nil {
		return err
	}
	s.auth.Store(a)
	s.log.Info("tokens loaded", "principals", a.Len())
	return nil
}
