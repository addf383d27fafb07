package collector

import "context"

// Request is who and where a step stream belongs to: every record the
// collector makes from the stream carries it. Put it in the context given
// to Wrap with WithRequest.
type Request struct {
	TenantID  string // the tenant, e.g. from the gateway's X-Tenant
	UserID    string // the user, e.g. from the gateway's X-Auth-Subject
	AuthMode  string // how the user authenticated: "gateway", "bearer", …
	SessionID string // the conversation
	TraceID   string // the distributed trace
	RequestID string // the request within the session
	Agent     string // the agent's configured name
	Model     string // the model, until a stream_complete names another
}

type requestKey struct{}

// WithRequest returns a copy of ctx that carries r.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, r)
}

// RequestFrom returns the Request ctx carries, and whether it carries one.
func RequestFrom(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(requestKey{}).(Request)
	return r, ok
}
