/// The page at `/`: pick or drop images, read each verdict. One file, no network beyond this
/// server, usable with the keyboard and on a phone-sized screen.
enum WebPage {
    static let html = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <link rel="icon" href="data:,">
    <title>clipdetect</title>
    <style>
      :root { color-scheme: light dark; --line: #8884; --synthetic: #c0392b; --real: #1e8449; --unsure: #b9770e; }
      body { font: 16px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; }
      h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
      p.lead { margin: 0 0 1rem; opacity: .8; }
      #drop { border: 2px dashed var(--line); border-radius: .75rem; padding: 1.5rem; text-align: center; }
      #drop.over { border-color: currentColor; }
      #drop:focus-within { outline: 3px solid #3b82f6; outline-offset: 2px; }
      label.pick { display: inline-block; padding: .6rem 1rem; border: 1px solid currentColor; border-radius: .5rem; cursor: pointer; }
      input[type=file] { position: absolute; opacity: 0; width: 1px; height: 1px; }
      #key { display: none; margin-top: 1rem; }
      #status { min-height: 1.5rem; margin: .75rem 0; }
      #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(15rem, 1fr)); gap: .75rem; padding: 0; list-style: none; }
      .card { border: 1px solid var(--line); border-radius: .75rem; overflow: hidden; }
      .card img, .card .preview { display: block; width: 100%; height: 10rem; object-fit: cover; background: #8882; }
      .card .preview { display: flex; align-items: center; justify-content: center; opacity: .7; }
      .card .body { padding: .6rem .8rem; }
      .verdict { font-weight: 700; font-size: 1.1rem; }
      .synthetic { color: var(--synthetic); } .real { color: var(--real); } .uncertain { color: var(--unsure); }
      .error { color: var(--synthetic); }
      .name { word-break: break-all; font-size: .85rem; opacity: .8; }
      table { border-collapse: collapse; font-size: .85rem; margin-top: .3rem; }
      td { padding: 0 .5rem 0 0; }
    </style>
    </head>
    <body>
    <main>
      <h1>clipdetect</h1>
      <p class="lead">Was this image made by a generative model? Images are scored on this server and go nowhere else.</p>
      <div id="drop">
        <p>Drop images here, or</p>
        <label class="pick" for="files">Choose images…</label>
        <input id="files" type="file" accept="image/*" multiple>
        <div id="key"><label for="apikey">API key</label> <input id="apikey" type="password" autocomplete="off"></div>
      </div>
      <div id="status" role="status" aria-live="polite"></div>
      <ul id="results" aria-label="Verdicts"></ul>
    </main>
    <script>
    "use strict";
    const drop = document.getElementById("drop"), files = document.getElementById("files"),
          statusLine = document.getElementById("status"), results = document.getElementById("results"),
          keyBox = document.getElementById("key"), keyInput = document.getElementById("apikey");
    function element(tag, className, text) {
      const node = document.createElement(tag);
      if (className) node.className = className;
      if (text !== undefined) node.textContent = text;
      return node;
    }
    function card(file, verdict) {
      const item = element("li", "card");
      const image = element("img");
      image.alt = file.name;
      image.src = URL.createObjectURL(file);
      image.onerror = () => image.replaceWith(element("div", "preview", "no preview"));
      item.appendChild(image);
      const body = element("div", "body");
      if (verdict.error) {
        body.appendChild(element("div", "verdict error", "Could not score"));
        body.appendChild(element("div", "message", verdict.error.message));
      } else {
        body.appendChild(element("div", "verdict " + verdict.verdict,
          verdict.verdict + " — " + (100 * verdict.probability).toFixed(1) + "% synthetic"));
        const table = element("table");
        for (const [head, score] of Object.entries(verdict.scores)) {
          const row = element("tr");
          row.appendChild(element("td", "", head));
          row.appendChild(element("td", "", score.toFixed(3)));
          table.appendChild(row);
        }
        if (verdict.fused !== undefined && verdict.fused !== null) {
          const row = element("tr");
          row.appendChild(element("td", "", "fused"));
          row.appendChild(element("td", "", verdict.fused.toFixed(3)));
          table.appendChild(row);
        }
        body.appendChild(table);
        if (verdict.width) body.appendChild(element("div", "name", verdict.width + "×" + verdict.height + " pixels"));
      }
      body.appendChild(element("div", "name", file.name));
      item.appendChild(body);
      return item;
    }
    async function score(list) {
      const chosen = Array.from(list);
      if (chosen.length === 0) return;
      statusLine.textContent = "Scoring " + chosen.length + " image" + (chosen.length > 1 ? "s" : "") + "…";
      const form = new FormData();
      for (const file of chosen) form.append("media", file, file.name);
      const headers = {};
      if (keyInput.value) headers["Authorization"] = "Bearer " + keyInput.value;
      let response, body;
      try {
        response = await fetch("/v1/detect", { method: "POST", body: form, headers });
        body = await response.json();
      } catch (error) {
        statusLine.textContent = "The server did not answer: " + error;
        return;
      }
      if (!response.ok) {
        if (response.status === 401) { keyBox.style.display = "block"; keyInput.focus(); }
        statusLine.textContent = (body.error && body.error.message) || ("The server answered " + response.status);
        return;
      }
      // The newest batch on top, its images in the order they were chosen.
      results.prepend(...body.images.map((verdict, index) => card(chosen[index], verdict)));
      const failed = body.images.filter(v => v.error).length;
      statusLine.textContent = "Scored " + (chosen.length - failed) + " of " + chosen.length + (failed ? "; " + failed + " could not be read" : "") + ".";
    }
    files.addEventListener("change", () => { score(files.files); files.value = ""; });
    drop.addEventListener("dragover", event => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", event => { event.preventDefault(); drop.classList.remove("over"); score(event.dataTransfer.files); });
    </script>
    </body>
    </html>
    """#
}
