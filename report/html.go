package report

import (
	"html/template"
	"io"
	"strings"
	"time"

	"github.com/vellumlog/vellum"
)

// page is what the template renders.
type page struct {
	Generated  time.Time
	Principal  string
	Dir        string
	Filter     Filter
	Summary    *Summary
	Integrity  *Integrity
	Charts     []Chart
	Outcomes   []outcomeRow
	Commands   []string
	PublicKey  string // the --pubkey argument the commands use
	Retention  string
	Holds      string
	HoldsState string
}

type outcomeRow struct {
	Name  string
	N     uint64
	Color string
}

var funcs = template.FuncMap{
	"svg":    func(b []byte) template.HTML { return template.HTML(b) }, // drawn by gonum/plot, which escapes every label
	"join":   func(s []string) string { return strings.Join(s, "|") },
	"rfc":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":    groupDigits,
	"orAll":  orAll,
	"shortd": func(d time.Duration) string { return d.Round(time.Millisecond).String() },
}

func orAll(t time.Time, word string) string {
	if t.IsZero() {
		return word
	}
	return t.UTC().Format(time.RFC3339)
}

// groupDigits writes n with thin spaces between thousands.
func groupDigits(n uint64) string {
	s := []byte{}
	d := []byte(strings.TrimSpace(uintString(n)))
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			s = append(s, ',')
		}
		s = append(s, c)
	}
	return string(s)
}

func uintString(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

func writePage(w io.Writer, p *page) error {
	for i, name := range vellum.Statuses {
		c := outcomeColors[i]
		p.Outcomes = append(p.Outcomes, outcomeRow{Name: name, N: p.Summary.ByOutcome[i], Color: hexColor(c.R, c.G, c.B)})
	}
	return tmpl.Execute(w, p)
}

func hexColor(r, g, b uint8) string {
	const x = "0123456789abcdef"
	return string([]byte{'#', x[r>>4], x[r&15], x[g>>4], x[g&15], x[b>>4], x[b&15]})
}

var tmpl = template.Must(template.New("report").Funcs(funcs).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="vellum report">
<title>Vellum compliance report</title>
<style>
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; color: #1d2530; background: #f4f6f8; margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 32px 0 10px; border-bottom: 1px solid #d8dde3; padding-bottom: 4px; }
.meta { color: #536070; font-size: 13px; margin: 0 0 16px; }
.tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 14px 0; }
.tile { border: 1px solid #d8dde3; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
.tile b { display: block; font-size: 20px; }
.tile span { font-size: 12px; color: #536070; }
.verdict { padding: 10px 14px; border-radius: 6px; font-weight: bold; margin: 8px 0 12px; }
.ok { background: #e3f4e8; border: 1px solid #4c9a6a; }
.bad { background: #fbe6e3; border: 1px solid #d94f3d; }
.warn { background: #fdf3dc; border: 1px solid #e6a12b; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { text-align: left; padding: 4px 10px 4px 0; vertical-align: top; }
th { color: #536070; font-weight: normal; white-space: nowrap; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
code, pre { font-family: "Liberation Mono", Consolas, monospace; font-size: 12px; }
pre { background: #f4f6f8; padding: 8px 10px; border-radius: 4px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
figure { margin: 18px 0; padding: 0; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #536070; margin-top: 4px; }
.empty { color: #536070; font-style: italic; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
@media print { body { background: #fff; } main { padding: 0; } figure { break-inside: avoid; } }
</style>
</head>
<body>
<main>
<h1>Vellum compliance report</h1>
<p class="meta">Store <code>{{.Integrity.StoreID}}</code> in <code>{{.Dir}}</code> ·
period {{orAll .Filter.Since "from the first record"}} to {{orAll .Filter.Until "the last record"}}{{if .Filter.Tenants}} · tenants {{range $i, $t := .Filter.Tenants}}{{if $i}}, {{end}}<code>{{$t}}</code>{{end}}{{end}} ·
generated {{rfc .Generated}}{{if .Principal}} for {{.Principal}}{{end}} · times are receipt times in UTC</p>

<section id="integrity">
<h2>Integrity</h2>
{{with .Integrity}}
{{if .Verified}}<div class="verdict ok" id="verdict">VERIFIED: the latest signed checkpoint's signature checks with the public key, and its Merkle root matches the {{num .Latest.Size}} records in the segment files.</div>
{{else if .Latest}}<div class="verdict {{if or (and .SignatureChecked (not .SignatureOK)) (and .RootChecked (not .RootOK))}}bad{{else}}warn{{end}}" id="verdict">NOT VERIFIED: {{if and .SignatureChecked (not .SignatureOK)}}the signature does not check: {{.SignatureErr}}. {{else if not .SignatureChecked}}signature {{.SignatureErr}}. {{end}}{{if and .RootChecked (not .RootOK)}}The Merkle root does not match the data: {{.RootErr}}.{{end}}</div>
{{else}}<div class="verdict warn" id="verdict">NO CHECKPOINT: {{.SignatureErr}}. Records are still HMAC-chained; verify them with the HMAC key (below).</div>{{end}}
<table>
{{with .Latest}}<tr><th>latest signed checkpoint</th><td>origin <code>{{.Origin}}</code>, tree size {{num .Size}}, root <code>{{.Root.Base64}}</code></td></tr>{{end}}
<tr><th>checkpoints in the log</th><td>{{.Checkpoints}}</td></tr>
<tr><th>signature</th><td>{{if .SignatureChecked}}{{if .SignatureOK}}valid{{else}}INVALID: {{.SignatureErr}}{{end}}{{else}}{{.SignatureErr}}{{end}}</td></tr>
<tr><th>root against the data</th><td>{{if .RootChecked}}{{if .RootOK}}matches (recomputed from the segment files){{else}}DOES NOT MATCH: {{.RootErr}}{{end}}{{else}}not checked{{end}}</td></tr>
<tr><th>public key</th><td>{{if .PublicKeyFile}}<code>{{.PublicKeyFile}}</code>{{if .KeyName}}: name <code>{{.KeyName}}</code>, key hash <code>{{.KeyHash}}</code>{{end}}{{else}}none given{{end}}</td></tr>
{{if .Fingerprint}}<tr><th>key fingerprint</th><td><code id="fingerprint">SHA-256 {{.Fingerprint}}</code><br><span class="meta">compare: <code>cut -d+ -f3 signing.pub | base64 -d | tail -c 32 | sha256sum</code></span></td></tr>{{end}}
{{end}}
<tr><th>retention</th><td id="retention">{{.Retention}}</td></tr>
<tr><th>legal holds</th><td id="holds">{{.Holds}}{{if .HoldsState}}<br><span class="meta">{{.HoldsState}}</span>{{end}}</td></tr>
</table>
{{if .Integrity.NoteText}}<p>The latest checkpoint as signed (save it as <code>cp.txt</code> to check a later copy of the log against it):</p>
<pre id="checkpoint-note">{{.Integrity.NoteText}}</pre>{{end}}
<p>Re-verify offline, on a copy of the data directory, with nothing but the <code>vellum</code> binary and the public key:</p>
<pre id="commands">{{range .Commands}}{{.}}
{{end}}</pre>
<p class="meta">This report counts records; it is not a verifier. The checks above cover the latest checkpoint: its signature and its root recomputed from the files. <code>vellum verify</code> checks every segment, link, Merkle root and checkpoint, and with the HMAC key every record's MAC.</p>
</section>

<section id="summary">
<h2>Activity</h2>
{{with .Summary}}
<div class="tiles">
<div class="tile"><b id="total-records">{{num .Records}}</b><span>records</span></div>
{{range $.Outcomes}}<div class="tile"><b>{{num .N}}</b><span><i class="swatch" style="background:{{.Color}}"></i>{{.Name}}</span></div>
{{end}}<div class="tile"><b>{{num .RedactedRecords}}</b><span>records with redactions</span></div>
</div>
<p class="meta">{{if .Records}}First record {{rfc .First}}, last {{rfc .Last}}. {{end}}{{num .Scanned}} records read from {{.Segments}} segment files in {{shortd .Elapsed}}.</p>
{{end}}
{{range .Charts}}
<figure id="chart-{{.ID}}" class="chart" data-series="{{join .Series}}">
{{if .SVG}}{{svg .SVG}}{{else}}<p class="empty">{{.Title}}: {{.Empty}}</p>{{end}}
<figcaption>{{.Title}}</figcaption>
</figure>
{{end}}
</section>
</main>
</body>
</html>
`))
