package server

import (
	"io"
	"log/slog"
)

// NewLogger returns the server's logger: log_format text (logfmt key=value
// lines) or json (one JSON object per line), at log_level, writing to w.
func NewLogger(w io.Writer, cfg *ServerConfig) *slog.Logger {
	o := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}
