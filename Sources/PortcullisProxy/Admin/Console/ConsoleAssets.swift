/// The console's pages, compiled into the binary (a static build carries no resource files):
/// one HTML shell, one script, one style sheet. Nothing is fetched from anywhere else.
enum ConsoleAssets {
    struct Asset {
        var contentType: String
        var body: String
    }

    static func asset(path: String) -> Asset? {
        switch path {
        case "/ui/", "/ui/index.html": return Asset(contentType: "text/html; charset=utf-8", body: Self.html)
        case "/ui/app.js": return Asset(contentType: "text/javascript; charset=utf-8", body: Self.script)
        case "/ui/app.css": return Asset(contentType: "text/css; charset=utf-8", body: Self.style)
        default: return nil
        }
    }

    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Portcullis console</title>
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <span class="brand">Portcullis</span>
  <nav id="nav" aria-label="Console" hidden>
    <a href="#/clients">Clients</a>
    <a href="#/roles">Roles</a>
    <a href="#/explain">Explain</a>
    <a href="#/audit">Audit</a>
  </nav>
  <span id="who" class="who" hidden></span>
  <button id="signout" type="button" class="link" hidden>Sign out</button>
</header>
<div id="status" role="status" aria-live="polite"></div>
<main id="main" tabindex="-1"><p>Loading…</p><noscript>The console needs JavaScript.</noscript></main>
<dialog id="dialog" aria-labelledby="dialog-title"></dialog>
</body>
</html>
"""#
}
