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

// Package codeshape keeps the code base in the shape the project agreed on: no function over
// maxFuncLines lines and no file over maxFileLines lines outside tests and generated code, and every
// Go file starting with the licence header of hack/boilerplate.go.txt. An exception names its reason
// in the table below, so growing past a bound is a decision someone wrote down, not an accident.
package codeshape

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	maxFuncLines = 80
	maxFileLines = 450
)

// exceptions are the files and functions allowed past the bounds, each with its reason. Keys are
// paths from the repository root, or path:function.
var exceptions = map[string]string{}

// root is the repository root, two levels above this package.
const root = "../.."

// sources lists the Go files of the repository, skipping bin/ and hidden directories.
func sources(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || name == "bin" || name == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func rel(path string) string {
	r, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(r)
}

func generated(src []byte) bool {
	return bytes.Contains(src, []byte("Code generated")) && bytes.Contains(src, []byte("DO NOT EDIT"))
}

func TestFunctionAndFileLength(t *testing.T) {
	fset := token.NewFileSet()
	for _, path := range sources(t) {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if generated(src) || strings.HasPrefix(filepath.Base(path), "zz_generated") {
			continue
		}
		name := rel(path)
		if n := bytes.Count(src, []byte("\n")); n > maxFileLines && exceptions[name] == "" {
			t.Errorf("%s has %d lines (at most %d outside tests; split it, or add an exception with its reason)", name, n, maxFileLines)
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			lines := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			key := name + ":" + fn.Name.Name
			if lines > maxFuncLines && exceptions[key] == "" {
				t.Errorf("%s is %d lines (at most %d outside tests; split it, or add an exception with its reason)", key, lines, maxFuncLines)
			}
		}
	}
}

func TestLicenceHeader(t *testing.T) {
	header, err := os.ReadFile(filepath.Join(root, "hack", "boilerplate.go.txt"))
	if err != nil {
		t.Fatal(err)
	}
	header = bytes.TrimSpace(header)
	for _, path := range sources(t) {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(src, []byte("//go:build ")) { // a build constraint must come first
			_, src, _ = bytes.Cut(src, []byte("\n\n"))
		}
		if !bytes.HasPrefix(src, header) {
			t.Errorf("%s does not start with the licence header of hack/boilerplate.go.txt", rel(path))
		}
	}
}
