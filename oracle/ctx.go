package oracle

import (
	"context"
	"net/http"
)

func contextWith(req *http.Request, k, v any) context.Context {
	return context.WithValue(req.Context(), k, v)
}

// contextOf is the context of work that outlives the HTTP request that
// started it (queue submission, model preparation).
func contextOf() context.Context { return context.Background() }
