/// This build's version: `clipdetect --version`, reports and the service show it.
public let clipdetectVersion = "0.5.0"
