// A Go client of bearer_grpc's HTTP face, built offline from Debian's Go packages:
// golang.org/x/oauth2/clientcredentials gets a token from the token endpoint, go-oidc
// verifies it with the keys and algorithms discovery names, and a gRPC client sends it
// with PerRPCCredentials to a service protected by BearerServerInterceptor.
//
// Configuration comes from the environment (the secret never on a command line):
// ISSUER, CLIENT_ID, CLIENT_SECRET, AUDIENCE, TARGET (host:port, TLS), CA_FILE, METHOD.
// It prints one JSON object of results.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	oidc "github.com/coreos/go-oidc"
	"golang.org/x/oauth2/clientcredentials"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/oauth"
	"google.golang.org/grpc/status"
)

// rawCodec sends and receives message bytes as they are: the client needs no
// generated code, and an empty message is valid for any request type.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	result := map[string]interface{}{}
	fail := func(step string, err error) {
		result["failed"] = step + ": " + err.Error()
		out, _ := json.Marshal(result)
		fmt.Println(string(out))
		os.Exit(1)
	}

	provider, err := oidc.NewProvider(ctx, os.Getenv("ISSUER"))
	if err != nil {
		fail("discovery", err)
	}
	var metadata struct {
		TokenURL string   `json:"token_endpoint"`
		Algs     []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&metadata); err != nil {
		fail("metadata", err)
	}
	config := clientcredentials.Config{
		ClientID:     os.Getenv("CLIENT_ID"),
		ClientSecret: os.Getenv("CLIENT_SECRET"),
		TokenURL:     metadata.TokenURL,
		Scopes:       []string{"orders.read"},
	}
	token, err := config.Token(ctx)
	if err != nil {
		fail("token", err)
	}
	result["token_type"] = token.TokenType

	// go-oidc 2.x assumes RS256 unless told: the algorithms come from discovery.
	audience := os.Getenv("AUDIENCE")
	verified, err := provider.Verifier(&oidc.Config{ClientID: audience, SupportedSigningAlgs: metadata.Algs}).Verify(ctx, token.AccessToken)
	if err != nil {
		fail("verify", err)
	}
	result["subject"] = verified.Subject
	_, err = provider.Verifier(&oidc.Config{ClientID: audience}).Verify(ctx, token.AccessToken)
	result["rs256_default_refuses"] = err != nil

	tls, err := credentials.NewClientTLSFromFile(os.Getenv("CA_FILE"), "")
	if err != nil {
		fail("tls", err)
	}
	call := func(options ...grpc.DialOption) string {
		options = append(options, grpc.WithTransportCredentials(tls), grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
		conn, err := grpc.DialContext(ctx, os.Getenv("TARGET"), options...)
		if err != nil {
			fail("dial", err)
		}
		defer conn.Close()
		request, response := []byte{}, []byte{}
		err = conn.Invoke(ctx, os.Getenv("METHOD"), &request, &response)
		return status.Code(err).String()
	}
	result["with_token"] = call(grpc.WithPerRPCCredentials(oauth.TokenSource{TokenSource: config.TokenSource(ctx)}))
	result["without_token"] = call()
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}
