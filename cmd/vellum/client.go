package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Environment variables the commands that talk to a running server read.
const (
	envServer = "VELLUM_SERVER"
	envToken  = "VELLUM_TOKEN"
	envAdmin  = "VELLUM_ADMIN_TOKEN"
)

// defaultServer is the address `vellum serve` listens on by default.
const defaultServer = "http://127.0.0.1:8080"

// clientEnvHelp is the Environment section of commands that call a server.
var clientEnvHelp = []string{
	envServer + "      server base URL when --server is not given (default " + defaultServer + ")",
	envToken + "       bearer token when --token is not given",
	envAdmin + " bearer token when neither --token nor " + envToken + " is set",
}

// apiClient calls a running server's HTTP API with a bearer token.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// clientFlags registers --server and --token on fl.
func clientFlags(fl *flag.FlagSet) (server, token *string) {
	server = fl.String("server", "", "server base URL (default $"+envServer+", then "+defaultServer+")")
	token = fl.String("token", "", "bearer token (default $"+envToken+", then $"+envAdmin+")")
	return server, token
}

// newClient resolves the server and token from the flags and the
// environment; a missing token is an error saying how to give one.
func newClient(server, token string) (*apiClient, error) {
	if server == "" {
		server = os.Getenv(envServer)
	}
	if server == "" {
		server = defaultServer
	}
	if token == "" {
		token = os.Getenv(envToken)
	}
	if token == "" {
		token = os.Getenv(envAdmin)
	}
	if token == "" {
		return nil, fmt.Errorf("no token: pass --token or set %s", envToken)
	}
	return &apiClient{base: strings.TrimRight(server, "/"), token: token, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// do sends a request and returns the response for the caller to read and
// close when the status is 200; any other status is an error carrying the
// server's detail.
func (c *apiClient) do(method, pathAndQuery string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(method, c.base+pathAndQuery, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(b, &e)
		if e.Detail == "" {
			e.Detail = strings.TrimSpace(string(b))
		}
		return nil, fmt.Errorf("%s %s: %s: %s", method, c.base+strings.SplitN(pathAndQuery, "?", 2)[0], resp.Status, e.Detail)
	}
	return resp, nil
}

// getJSON calls method on pathAndQuery and decodes a 200 answer into v.
func (c *apiClient) callJSON(method, pathAndQuery string, v any) error {
	resp, err := c.do(method, pathAndQuery, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 256<<20)).Decode(v); err != nil {
		return fmt.Errorf("bad response from %s: %v", c.base, err)
	}
	return nil
}
