minter {
  issuer = "https://minter.test
}
