//go:build unix

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

package gateway

import "syscall"

// alive reports whether an idle connection may carry a request: the server has neither closed it
// (EOF, reset) nor sent anything unasked. It peeks without blocking (one recv with MSG_PEEK and
// MSG_DONTWAIT); net/http's Transport learns the same from its reader goroutine.
func (pc *h1conn) alive() bool {
	if pc.raw == nil {
		return true
	}
	if pc.peek == nil { // made once: a closure made per call would be allocated per call
		pc.peek = func(fd uintptr) bool {
			_, _, err := syscall.Recvfrom(int(fd), pc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			pc.peekAlive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
			return true
		}
	}
	pc.peekAlive = false
	err := pc.raw.Read(pc.peek)
	return err == nil && pc.peekAlive
}
