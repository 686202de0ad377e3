// Quickstart: sign in with a private key, deploy an NFT's agent locally, stream a chat.
//
//	PANTHERS_URL=http://127.0.0.1:3000 PANTHERS_NFT=42 PANTHERS_PRIVATE_KEY=0x... go run ./examples/quickstart
//
// Without PANTHERS_PRIVATE_KEY a new key is generated (it must own the NFT: on a self-hosted
// server, `panthers nft assign 42 <address>`).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	panthers "github.com/secret-panthers/secret-panthers/sdk/go"
)

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nft := env("PANTHERS_NFT", "42")
	var w *panthers.Wallet
	var err error
	if key := os.Getenv("PANTHERS_PRIVATE_KEY"); key != "" {
		w, err = panthers.WalletFromHex(key)
	} else {
		w, err = panthers.NewWallet()
	}
	if err != nil {
		return err
	}
	fmt.Printf("wallet %s, NFT %s\n", w.Address(), nft)

	c := panthers.New(env("PANTHERS_URL", "http://127.0.0.1:3000"), nil)
	if _, err := c.SignIn(ctx, w, nft); err != nil {
		return err
	}
	if _, err := c.Deploy(ctx, panthers.DeployRequest{NFTTokenID: nft, Provider: "local"}); err != nil {
		return err
	}
	if _, err := c.WaitForStatus(ctx, nft, panthers.StatusRunning); err != nil {
		return err
	}
	stream, err := c.ChatStream(ctx, nft, panthers.ChatRequest{Message: "Hello! Who are you?"})
	if err != nil {
		return err
	}
	defer stream.Close()
	for {
		chunk, err := stream.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if chunk.Done {
			fmt.Printf("\n[%d tokens, conversation %s]\n", chunk.TokensUsed, chunk.ConversationID)
		} else {
			fmt.Print(chunk.Content)
		}
	}
}
