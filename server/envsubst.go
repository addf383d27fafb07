package server

import (
	"bytes"
	"fmt"
)

// expandEnv substitutes environment variables in configuration text before
// it is parsed, following the agent.yaml convention of the agent ecosystem:
//
//	${VAR}          the value of VAR; an error when VAR is unset
//	${VAR:-default} default when VAR is unset or empty
//	${VAR-default}  default only when VAR is unset (set but empty stays empty)
//	$$              a literal $
//
// A $ followed by anything else is kept as it is. A default is taken
// literally up to the first "}" (no nesting). Lines whose first non-blank
// character is # are comments and are copied unchanged, so a commented-out
// example may mention variables that are not set. Errors wrap ErrConfig and
// name the line and the variable.
func expandEnv(src []byte, lookup func(string) (string, bool)) ([]byte, error) {
	out := make([]byte, 0, len(src))
	line := 0
	for len(src) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			l, src = src[:i+1], src[i+1:]
		} else {
			l, src = src, nil
		}
		if t := bytes.TrimLeft(l, " \t"); len(t) > 0 && t[0] == '#' {
			out = append(out, l...)
			continue
		}
		var err error
		if out, err = expandLine(out, l, line, lookup); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func expandLine(out, l []byte, line int, lookup func(string) (string, bool)) ([]byte, error) {
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c != '$' || i+1 == len(l) || (l[i+1] != '$' && l[i+1] != '{') {
			out = append(out, c)
			continue
		}
		if l[i+1] == '$' {
			out = append(out, '$')
			i++
			continue
		}
		end := bytes.IndexByte(l[i+2:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%w: line %d: unterminated ${ (want ${NAME}, ${NAME:-default} or ${NAME-default}; write $$ for a literal $)", ErrConfig, line)
		}
		ref := string(l[i+2 : i+2+end])
		v, err := resolveRef(ref, lookup)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrConfig, line, err)
		}
		out = append(out, v...)
		i += 2 + end
	}
	return out, nil
}

// resolveRef resolves the text between ${ and }.
func resolveRef(ref string, lookup func(string) (string, bool)) (string, error) {
	n := 0
	for n < len(ref) && (ref[n] == '_' || ref[n] >= 'A' && ref[n] <= 'Z' || ref[n] >= 'a' && ref[n] <= 'z' || n > 0 && ref[n] >= '0' && ref[n] <= '9') {
		n++
	}
	name, rest := ref[:n], ref[n:]
	if name == "" {
		return "", fmt.Errorf("${%s} does not start with a variable name (letters, digits and _, not starting with a digit)", ref)
	}
	v, set := lookup(name)
	switch {
	case rest == "":
		if !set {
			return "", fmt.Errorf("environment variable %s is not set (give a default with ${%s:-default})", name, name)
		}
		return v, nil
	case len(rest) >= 2 && rest[:2] == ":-":
		if !set || v == "" {
			return rest[2:], nil
		}
		return v, nil
	case rest[0] == '-':
		if !set {
			return rest[1:], nil
		}
		return v, nil
	}
	return "", fmt.Errorf("${%s}: want ${%s}, ${%s:-default} or ${%s-default}", ref, name, name, name)
}
