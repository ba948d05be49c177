/*
Copyright 2026 The resilience operator authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command benchtable turns `go test -bench -benchmem` output into a markdown table that sets each
// "BenchmarkFoo/ours" beside its anchors ("BenchmarkFoo/xrate", "BenchmarkFoo/gobreaker", ...),
// with medians over -count runs and the ratio of ns/op:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./internal/patterns/... > bench.txt
//	go run ./bench/table -json bench.json < bench.txt
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	jsonPath := flag.String("json", "", "also write the rows as JSON to this file")
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *jsonPath); err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer, jsonPath string) error {
	results, err := Parse(in)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		return errors.New("no benchmark results in the input")
	}
	rows := Rows(results)
	if err := Markdown(out, rows); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if jsonPath == "" {
		return nil
	}
	data, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	if err := os.WriteFile(jsonPath, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", jsonPath, err)
	}
	return nil
}
