package witness

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Paths of the witness's HTTP interface beside add-checkpoint
// (docs/witness.md). CheckpointPath serves the latest cosigned checkpoint
// of an origin, so an auditor can take one from the witness rather than
// from the operator.
const (
	CheckpointPath = "/checkpoint"
	AlarmsPath     = "/alarms"
	HealthPath     = "/healthz"
)

// Handler returns the witness's HTTP interface:
//
//	POST /add-checkpoint          C2SP tlog-witness add-checkpoint
//	GET  /checkpoint?origin=O     the latest cosigned checkpoint of O (text)
//	GET  /alarms                  every alarm on record (JSON)
//	GET  /healthz                 200 while the witness runs
func (w *Witness) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AddCheckpointPath, w.handleAdd)
	mux.HandleFunc("GET "+CheckpointPath, w.handleCheckpoint)
	mux.HandleFunc("GET "+AlarmsPath, w.handleAlarms)
	mux.HandleFunc("GET "+HealthPath, func(rw http.ResponseWriter, _ *http.Request) {
		text(rw, http.StatusOK, "ok\n")
	})
	return w.logRequests(mux)
}

func text(rw http.ResponseWriter, status int, body string) {
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("X-Content-Type-Options", "nosniff")
	rw.WriteHeader(status)
	io.WriteString(rw, body)
}

func (w *Witness) handleAdd(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, MaxRequestBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			text(rw, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes\n", MaxRequestBytes))
			return
		}
		text(rw, http.StatusBadRequest, "cannot read the body\n")
		return
	}
	req, err := ParseAddRequest(body)
	if err != nil {
		w.log.Warn("refused a malformed request", slog.String("reason", err.Error()))
		text(rw, http.StatusBadRequest, err.Error()+"\n")
		return
	}
	line, err := w.Add(req)
	var re *RefusedError
	switch {
	case err == nil:
		text(rw, http.StatusOK, string(line))
	case errors.As(err, &re) && re.Status == http.StatusConflict:
		rw.Header().Set("Content-Type", SizeContentType)
		rw.WriteHeader(http.StatusConflict)
		io.WriteString(rw, strconv.FormatUint(re.Size, 10)+"\n")
	case errors.As(err, &re):
		text(rw, re.Status, re.Reason+"\n")
	default:
		text(rw, http.StatusInternalServerError, "internal error; see the witness's log\n")
	}
}

func (w *Witness) handleCheckpoint(rw http.ResponseWriter, r *http.Request) {
	origin := r.URL.Query().Get("origin")
	if origin == "" {
		text(rw, http.StatusBadRequest, "give the log's origin: "+CheckpointPath+"?origin=<origin>\n")
		return
	}
	msg, ok := w.Latest(origin)
	if !ok {
		text(rw, http.StatusNotFound, fmt.Sprintf("this witness has cosigned no checkpoint of origin %q\n", origin))
		return
	}
	text(rw, http.StatusOK, string(msg))
}

func (w *Witness) handleAlarms(rw http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(struct {
		Alarms []Alarm `json:"alarms"`
	}{append([]Alarm{}, w.Alarms()...)})
	if err != nil {
		text(rw, http.StatusInternalServerError, "cannot encode the alarms\n")
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(http.StatusOK)
	rw.Write(append(b, '\n'))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// logRequests logs one line per request: method, path, status, duration.
func (w *Witness) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: rw}
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		if r.URL.Path == HealthPath {
			level = slog.LevelDebug
		}
		w.log.Log(r.Context(), level, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.String("remote", r.RemoteAddr), slog.Duration("duration", time.Since(start)))
	})
}
