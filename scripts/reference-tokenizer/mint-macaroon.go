// Mints a tokenizer macaroon with the reference's own library, for keyward's differential
// tests. build.sh copies this file into the reference's source tree in the cache and builds it
// there (it is not a Go project of ours).
//
// Input on stdin: {"key":"<hex root key>","caveats":{"method":[…],"path":[…],"prefix":[…],
// "pattern":[…],"host":[…],"notBefore":unix,"notAfter":unix}} (every caveat optional).
// Output on stdout: the Proxy-Authorization value ("FlyV1 fm2_…").
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"

	"github.com/superfly/macaroon"
	"github.com/superfly/tokenizer"
	tkmac "github.com/superfly/tokenizer/macaroon"
)

type input struct {
	Key     string `json:"key"`
	Caveats struct {
		Method    []string `json:"method"`
		Path      []string `json:"path"`
		Prefix    []string `json:"prefix"`
		Pattern   []string `json:"pattern"`
		Host      []string `json:"host"`
		NotBefore int64    `json:"notBefore"`
		NotAfter  int64    `json:"notAfter"`
	} `json:"caveats"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail(err)
	}
	key, err := hex.DecodeString(in.Key)
	if err != nil {
		fail(err)
	}
	var caveats []macaroon.Caveat
	c := in.Caveats
	if c.Method != nil {
		caveats = append(caveats, tkmac.ConstrainRequestMethod(c.Method...))
	}
	if c.Path != nil {
		caveats = append(caveats, tkmac.ConstrainRequestPath(c.Path...))
	}
	if c.Prefix != nil {
		caveats = append(caveats, tkmac.ConstrainRequestPathPrefix(c.Prefix...))
	}
	if c.Pattern != nil {
		caveats = append(caveats, tkmac.ConstrainRequestPathPattern(c.Pattern...))
	}
	if c.Host != nil {
		caveats = append(caveats, tkmac.ConstrainRequestHost(c.Host...))
	}
	if c.NotBefore != 0 || c.NotAfter != 0 {
		caveats = append(caveats, &macaroon.ValidityWindow{NotBefore: c.NotBefore, NotAfter: c.NotAfter})
	}
	header, err := tokenizer.NewMacaroonAuthConfig(key).Macaroon(caveats...)
	if err != nil {
		fail(err)
	}
	fmt.Println(header)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mint-macaroon:", err)
	os.Exit(1)
}
