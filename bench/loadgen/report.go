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

package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Goal is one goal of a performance issue, reported and not asserted.
type Goal struct {
	Goal   string `json:"goal"`
	Actual string `json:"actual"`
	Met    bool   `json:"met"`
}

// PrintGoals prints the goals as a table, the goal text padded to width.
func PrintGoals(goals []Goal, width int) {
	fmt.Println("\ngoals (reported, not asserted):")
	for _, g := range goals {
		met := "NOT met"
		if g.Met {
			met = "met"
		}
		fmt.Printf("  %-*s %16s  %s\n", width, g.Goal, g.Actual, met)
	}
}

// WriteJSON writes v, indented, to path (creating its directory), and says so.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", path)
	return nil
}
