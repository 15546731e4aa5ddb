package verifier

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zkoracle/zkoracle/verifier/core"
)

func FuzzDecodeKey(f *testing.F) {
	mods := fixtureProofs(f)
	for _, p := range mods {
		f.Add(p.reg.VerifyingKey)
		f.Add(p.reg.VerifyingKey[:len(p.reg.VerifyingKey)-3])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		vk, err := core.DecodeKey(b)
		if err == nil && vk.NbPublicWitness() < 0 {
			t.Fatal("decoded a key with a negative public-input count")
		}
	})
}

func FuzzDecodeProof(f *testing.F) {
	mods := fixtureProofs(f)
	for _, p := range mods {
		f.Add(p.claims[0].Proof)
	}
	f.Add(make([]byte, 192))
	f.Fuzz(func(t *testing.T, b []byte) {
		core.DecodeProof(b) // must not panic
	})
}

// FuzzRequest posts arbitrary bodies to verify and submit_result: never a
// 5xx, and nothing but a claim the prover really proved is ever accepted.
func FuzzRequest(f *testing.F) {
	mods := fixtureProofs(f)
	s, err := Open(Options{Path: filepath.Join(f.TempDir(), "state.db"), AllowDevKeys: true, Bootstrap: &Controller{Name: "admin", TokenHash: HashToken(token)}})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	mlp := mods["mnist-mlp"]
	if _, _, err := s.RegisterModel("admin", mlp.reg); err != nil {
		f.Fatal(err)
	}
	h := Handler(s)
	good, _ := json.Marshal(submit(mlp.claims[0], "seed"))
	f.Add(good)
	f.Add(good[:len(good)/3])
	f.Add([]byte(`{"request_id":"x","model_id":"` + mlp.reg.ModelID + `","input":[1],"output":[2],"proof":"AAAA"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{"/api/v1/query/verify", "/api/v1/update/submit_result"} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
			if rec.Code >= 500 {
				t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
			}
			var reply struct {
				Result struct {
					Valid    bool `json:"valid"`
					Accepted bool `json:"accepted"`
				} `json:"result"`
			}
			json.Unmarshal(rec.Body.Bytes(), &reply)
			if rec.Code == 200 && (reply.Result.Valid || reply.Result.Accepted) {
				var req SubmitRequest
				json.Unmarshal(body, &req)
				if !slices.Equal(req.Output, mlp.claims[0].Output) || !slices.Equal(req.Input, mlp.claims[0].Input) {
					t.Fatalf("%s accepted a claim nobody proved: %s", path, body)
				}
			}
		}
	})
}
