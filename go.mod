module github.com/vellumlog/vellum

go 1.26.0

require (
	github.com/klauspost/compress v1.20.4
	go.yaml.in/yaml/v3 v3.0.6
	golang.org/x/sys v0.50.0
)

require github.com/julienschmidt/httprouter v1.3.0 // indirect
