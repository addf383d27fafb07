module github.com/vellumlog/vellum

go 1.26.0
