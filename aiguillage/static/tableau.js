// Dashboard of the social service: reads GET /v1/agregats, draws with plain SVG, refreshes itself.
// It signs in first: a staff token pasted once, kept in sessionStorage (this tab, this session),
// sent as a bearer token; GET /v1/moi says which rights it gives, and the page shows only those:
// the figures (lire-agregats), the files of one's teams (lire-files), their caseloads (lire-charges).
"use strict";

const CLE_JETON = "aiguillage.jeton";
let droits = [];

function jeton() { return sessionStorage.getItem(CLE_JETON); }

class NonConnecte extends Error {}

async function lire(url) {
  const r = await fetch(url, { headers: { Authorization: "Bearer " + jeton() } });
  if (r.status === 401) throw new NonConnecte((await r.json()).detail || "jeton refusé");
  if (!r.ok) throw new Error("GET " + url.split("?")[0] + ": " + r.status);
  return r.json();
}

const SOURCES = {
  "service-medical": ["Service médical", "#1f4e79"], "cpam": ["CPAM / CCSS", "#4f9bd9"],
  "spst": ["Santé au travail (SPST)", "#e08a1e"], "cap-emploi": ["Cap emploi", "#4caf7a"], "mdph": ["MDPH", "#a05fb5"],
};
const ISSUES = {
  "maintien-poste": "Maintenu dans son poste", "maintien-autre-emploi": "Maintenu dans un autre emploi",
  "maintien-marche-travail": "Maintenu sur le marché du travail", "sortie-emploi": "Sortie de l’emploi",
  "sans-suite": "Sans suite", "autre": "Autre issue", "refus": "Refus de l’assuré", "annulation": "Annulé",
};
const MODES = { "de-visu": "En face à face", "telephone": "Par téléphone", "visite-domicile": "Visite à domicile" };
const PRECOS = {
  "visite-pre-reprise": "Visite de pré-reprise", "rqth": "Demande de RQTH", "bilan-competences": "Bilan de compétences",
  "cpf": "Compte personnel de formation", "mise-en-relation": "Mise en relation (insertion)", "autre": "Autre",
};
const MAINTIENS = ["maintien-poste", "maintien-autre-emploi", "maintien-marche-travail"];
const ECHEANCE_JOURS = 10;
const nf = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });

function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

async function api(params) {
  const q = new URLSearchParams(params);
  const territoire = document.getElementById("territoire").value;
  if (territoire) q.set("territoire", territoire);
  return (await lire("/v1/agregats?" + q.toString())).agregats;
}

// The figure as text, and the attributes that tie it to its row of /v1/agregats.
function nombre(row, suffixe = "") {
  if (!row) return '<span class="vide">—</span>';
  if (row.masque) return `<span class="masque" data-cle="${esc(row.cle)}" data-masque="true" title="moins de 5 : masqué (secret statistique)">masqué</span>`;
  return `<span data-cle="${esc(row.cle)}" data-valeur="${row.valeur}">${nf.format(row.valeur)}${suffixe}</span>`;
}
function pct(a, b) { return b > 0 ? nf.format(Math.round(1000 * a / b) / 10) + " %" : "—"; }
function v(row) { return row && !row.masque ? row.valeur : 0; }
function parDim(rows, dim) { const m = {}; for (const r of rows) m[r.dimensions[dim]] = r; return m; }

function carte(libelle, html, detail = "") {
  return `<div class="chiffre"><div class="valeur">${html}</div><div class="libelle">${esc(libelle)}</div>${detail ? `<div class="detail">${detail}</div>` : ""}</div>`;
}

function barres(lignes, libelles, total = null, parts = null) {
  if (!lignes.length) return '<p class="vide">Pas encore de donnée.</p>';
  const max = Math.max(1, ...lignes.map((r) => v(r)));
  return '<table class="barres">' + lignes.map((r) => {
    const nom = libelles ? (libelles[r.nom] || r.nom) : r.nom;
    const part = parts && parts[r.nom] ? `<div class="part" style="width:${100 * v(parts[r.nom]) / max}%"></div>` : "";
    const extra = total ? ` <small>(${pct(v(r), total)})</small>` : parts && parts[r.nom] ? ` <small>dont ${nombre(parts[r.nom])} en attente</small>` : "";
    return `<tr><td class="nom" title="${esc(nom)}">${esc(nom)}</td><td><div class="barre" style="width:${100 * v(r) / max}%">${part}</div></td><td class="nombre">${nombre(r)}${extra}</td></tr>`;
  }).join("") + "</table>";
}

function semaines(rows) {
  const periodes = [...new Set(rows.map((r) => r.periode))].sort().slice(-26);
  const el = document.getElementById("semaines");
  if (!periodes.length) { el.innerHTML = '<p class="vide">Pas encore de signalement.</p>'; return; }
  const W = 1000, H = 260, g = 40, bas = 30, larg = (W - g) / periodes.length;
  const piles = periodes.map((p) => rows.filter((r) => r.periode === p));
  const max = Math.max(1, ...piles.map((pile) => pile.reduce((s, r) => s + v(r), 0)));
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Signalements par semaine et par partenaire">`;
  for (let i = 0; i <= 4; i++) {
    const y = H - bas - (H - bas - 10) * i / 4;
    svg += `<line x1="${g}" x2="${W}" y1="${y}" y2="${y}" stroke="#e3e7eb"/><text x="${g - 6}" y="${y + 4}" text-anchor="end">${nf.format(Math.round(max * i / 4))}</text>`;
  }
  piles.forEach((pile, i) => {
    let y = H - bas;
    for (const src of Object.keys(SOURCES)) {
      const r = pile.find((x) => x.dimensions.source === src);
      if (!r || !v(r)) continue;
      const h = (H - bas - 10) * v(r) / max;
      y -= h;
      svg += `<rect x="${g + i * larg + 2}" y="${y}" width="${larg - 4}" height="${h}" fill="${SOURCES[src][1]}" data-cle="${esc(r.cle)}" data-valeur="${r.valeur}"><title>${esc(periodes[i])} — ${esc(SOURCES[src][0])} : ${nf.format(r.valeur)}</title></rect>`;
    }
    if (i % Math.ceil(periodes.length / 13) === 0) {
      // "sem. 7", with the year on the first week shown and on each new year.
      const [an, sem] = periodes[i].split("-W");
      const nouvelle = i === 0 || !periodes[i - 1].startsWith(an);
      svg += `<text x="${g + i * larg + larg / 2}" y="${H - 10}" text-anchor="middle">sem. ${Number(sem)}${nouvelle ? " " + esc(an) : ""}</text>`;
    }
  });
  el.innerHTML = svg + "</svg>";
  document.getElementById("legende-sources").innerHTML = Object.entries(SOURCES).map(([, [nom, c]]) => `<span style="--c:${c}">${esc(nom)}</span>`).join("");
}

function delais(rows) {
  const mois = [...new Set(rows.map((r) => r.periode))].sort().slice(-12);
  const get = (ind, m) => rows.find((r) => r.indicateur === ind && r.periode === m);
  const el = document.getElementById("delais");
  if (!mois.length) { el.innerHTML = '<p class="vide">Pas encore de premier contact.</p>'; document.getElementById("table-delais").innerHTML = ""; return; }
  const W = 600, H = 220, g = 36, bas = 26;
  const max = Math.ceil(1.15 * Math.max(ECHEANCE_JOURS + 2, ...mois.map((m) => v(get("delai-premier-contact-p90", m)))));
  const x = (i) => g + (W - g - 20) * (mois.length === 1 ? 0.5 : i / (mois.length - 1));
  const y = (d) => H - bas - (H - bas - 10) * d / max;
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Délai avant le premier contact">`;
  for (let d = 0; d <= max; d += Math.max(1, Math.ceil(max / 5))) svg += `<line x1="${g}" x2="${W}" y1="${y(d)}" y2="${y(d)}" stroke="#e3e7eb"/><text x="${g - 6}" y="${y(d) + 4}" text-anchor="end">${d} j</text>`;
  svg += `<line x1="${g}" x2="${W}" y1="${y(ECHEANCE_JOURS)}" y2="${y(ECHEANCE_JOURS)}" stroke="#c0392b" stroke-dasharray="6 4"/><text x="${W - 4}" y="${y(ECHEANCE_JOURS) - 5}" text-anchor="end" fill="#c0392b">échéance ${ECHEANCE_JOURS} j</text>`;
  for (const [ind, c, nom] of [["delai-premier-contact-p90", "#e08a1e", "90 %"], ["delai-premier-contact-p50", "#1f4e79", "médiane"]]) {
    const pts = mois.map((m, i) => [i, get(ind, m)]).filter(([, r]) => r && !r.masque);
    svg += `<polyline fill="none" stroke="${c}" stroke-width="3" points="${pts.map(([i, r]) => `${x(i)},${y(r.valeur)}`).join(" ")}"/>`;
    for (const [i, r] of pts) svg += `<circle cx="${x(i)}" cy="${y(r.valeur)}" r="4" fill="${c}" data-cle="${esc(r.cle)}" data-valeur="${r.valeur}"><title>${esc(r.periode)} — ${nom} : ${r.valeur} j</title></circle>`;
    if (pts.length) { const [i, r] = pts[pts.length - 1]; svg += `<text x="${x(i) - 6}" y="${y(r.valeur) - 8}" text-anchor="end" fill="${c}" font-weight="bold">${nom}</text>`; }
  }
  mois.forEach((m, i) => { svg += `<text x="${x(i)}" y="${H - 8}" text-anchor="middle">${esc(m.slice(5))}/${esc(m.slice(2, 4))}</text>`; });
  el.innerHTML = svg + "</svg>";
  const lignes = mois.slice(-6).map((m) => {
    const n = get("premiers-contacts", m), hors = get("premiers-contacts-hors-delai", m);
    return `<tr><td>${esc(m)}</td><td>${nombre(get("delai-premier-contact-p50", m), " j")}</td><td>${nombre(get("delai-premier-contact-p90", m), " j")}</td><td>${nombre(n)}</td><td>${nombre(hors)} <small>(${pct(v(hors), v(n))})</small></td><td>${nombre(get("escalades", m))}</td></tr>`;
  }).join("");
  document.getElementById("table-delais").innerHTML = `<tr><th>Mois</th><th>Médiane</th><th>9 sur 10</th><th>Premiers contacts</th><th>Hors délai</th><th>Escalades</th></tr>${lignes}`;
}

async function rafraichir() {
  const annees = await api({ indicateur: "signalements", periode_type: "annee", par: "" });
  const annee = annees.length ? annees.map((r) => r.periode).sort().pop() : String(new Date().getFullYear());
  document.getElementById("annee-titre").textContent = "année " + annee;
  const A = { periode_type: "annee", periode: annee };
  const [cles, courant, parSemaine, parFile, delaisRows, issues, issuesPdp, modes, precos, assistants] = await Promise.all([
    api({ ...A, par: "", indicateur: "signalements,assures-accompagnes,entretiens,delai-premier-contact-p50,premiers-contacts,premiers-contacts-hors-delai,actions-collectives,participants-collectifs" }),
    api({ periode_type: "courant", par: "", indicateur: "backlog,en-attente-premier-contact" }),
    api({ indicateur: "signalements", periode_type: "semaine", par: "source" }),
    api({ periode_type: "courant", par: "file", indicateur: "backlog,en-attente-premier-contact" }),
    api({ periode_type: "mois", par: "", indicateur: "delai-premier-contact-p50,delai-premier-contact-p90,premiers-contacts,premiers-contacts-hors-delai,escalades" }),
    api({ ...A, par: "issue", indicateur: "clotures" }),
    api({ ...A, par: "issue", axe: "PDP", indicateur: "clotures" }),
    api({ ...A, par: "mode", indicateur: "entretiens" }),
    api({ ...A, par: "preconisation", indicateur: "preconisations" }),
    api({ periode_type: "courant", par: "assistant", indicateur: "backlog" }),
  ]);
  const k = Object.fromEntries(cles.map((r) => [r.indicateur, r]));
  const c = Object.fromEntries(courant.map((r) => [r.indicateur, r]));
  // Kept in employment: among PDP accompaniments that ended (a refusal or a cancellation is not one).
  const pdp = issuesPdp.filter((r) => !["refus", "annulation"].includes(r.dimensions.issue)).reduce((s, r) => s + v(r), 0);
  const maintenus = issuesPdp.filter((r) => MAINTIENS.includes(r.dimensions.issue)).reduce((s, r) => s + v(r), 0);
  document.getElementById("chiffres").innerHTML = [
    carte("signalements reçus", nombre(k["signalements"])),
    carte("assurés accompagnés", nombre(k["assures-accompagnes"])),
    carte("entretiens réalisés", nombre(k["entretiens"]), k["assures-accompagnes"] && v(k["assures-accompagnes"]) ? `${nf.format(v(k["entretiens"]) / v(k["assures-accompagnes"]))} par assuré accompagné` : ""),
    carte("dossiers en cours", nombre(c["backlog"]), c["en-attente-premier-contact"] ? `dont ${nf.format(v(c["en-attente-premier-contact"]))} en attente d’un premier contact` : ""),
    carte("jours avant le premier contact (médiane)", nombre(k["delai-premier-contact-p50"])),
    carte("premiers contacts hors délai", `<span data-derive="hors-delai">${pct(v(k["premiers-contacts-hors-delai"]), v(k["premiers-contacts"]))}</span>`, `${nf.format(v(k["premiers-contacts-hors-delai"]))} sur ${nf.format(v(k["premiers-contacts"]))}`),
    carte("maintenus en emploi (PDP)", `<span data-derive="maintien">${pct(maintenus, pdp)}</span>`, `${nf.format(maintenus)} accompagnements PDP clôturés sur ${nf.format(pdp)}`),
    carte("actions collectives", nombre(k["actions-collectives"]), k["participants-collectifs"] ? `${nf.format(v(k["participants-collectifs"]))} participants` : ""),
  ].join("");
  semaines(parSemaine);
  const backlog = parFile.filter((r) => r.indicateur === "backlog").map((r) => ({ ...r, nom: r.dimensions.file })).sort((a, b) => v(b) - v(a));
  const attente = {};
  for (const r of parFile.filter((r) => r.indicateur === "en-attente-premier-contact")) attente[r.dimensions.file] = r;
  document.getElementById("backlog").innerHTML = barres(backlog, null, null, attente);
  delais(delaisRows);
  const totalClos = issues.reduce((s, r) => s + v(r), 0);
  document.getElementById("issues").innerHTML = barres(issues.map((r) => ({ ...r, nom: r.dimensions.issue })).sort((a, b) => v(b) - v(a)), ISSUES, totalClos);
  const totalEnt = modes.reduce((s, r) => s + v(r), 0);
  document.getElementById("entretiens").innerHTML = "<h3>Entretiens par mode</h3>" + barres(modes.map((r) => ({ ...r, nom: r.dimensions.mode })), MODES, totalEnt);
  const totalPre = precos.reduce((s, r) => s + v(r), 0);
  document.getElementById("preconisations").innerHTML = "<h3>Préconisations</h3>" + barres(precos.map((r) => ({ ...r, nom: r.dimensions.preconisation })).sort((a, b) => v(b) - v(a)), PRECOS, totalPre);
  document.getElementById("assistants").innerHTML = barres(assistants.map((r) => ({ ...r, nom: r.dimensions.assistant === "non-attribue" ? "Pas encore attribué" : r.dimensions.assistant })).sort((a, b) => v(b) - v(a)).slice(0, 15));
  document.getElementById("maj").textContent = new Date().toLocaleTimeString("fr-FR");
  document.body.dataset.pret = "oui";
}

async function territoires() {
  const sel = document.getElementById("territoire");
  const deps = await lire("/v1/agregats/territoires");
  const connus = new Set([...sel.options].map((o) => o.value));
  for (const d of deps) if (!connus.has(d)) sel.add(new Option("Département " + d, d));
}

// Personal rows: read on sign-in and on demand only (each read is one line of the audit trail).
async function files() {
  const liste = await lire("/v1/files");
  document.getElementById("files").innerHTML = liste.length ? `<table class="tableau" id="table-files"><tr><th>File</th><th>En attente</th><th>Plus urgent</th><th>Échéance la plus proche</th></tr>${liste.map((f) => {
    const echeance = f.signalements.map((s) => s.echeance_premier_contact).sort()[0];
    const prio = Math.min(...f.signalements.map((s) => s.priorite));
    return `<tr data-file="${esc(f.file)}"><td>${esc(f.file)}</td><td>${f.en_attente}</td><td>priorité ${prio}</td><td>${esc(echeance)}</td></tr>`;
  }).join("")}</table>` : `<p class="vide">Aucun signalement en attente dans vos files.</p>`;
}

async function charges() {
  const equipes = await lire("/v1/charges");
  document.getElementById("charges").innerHTML = equipes.map((e) => `<h3>${esc(e.equipe)} <small>(${e.en_attente} en attente)</small></h3>` +
    `<table class="tableau" data-equipe="${esc(e.equipe)}"><tr><th>Assistant(e)</th><th>Dossiers ouverts</th><th>Capacité</th></tr>${e.assistants.map((a) => `<tr><td>${esc(a.assistant)}</td><td>${a.actifs}</td><td>${a.capacite}</td></tr>`).join("")}</table>`).join("");
}

async function personnel() {
  if (droits.includes("lire-files")) await files();
  if (droits.includes("lire-charges")) await charges();
}

function connexion(message = "") {
  sessionStorage.removeItem(CLE_JETON);
  droits = [];
  document.getElementById("tableau").hidden = true;
  for (const el of document.querySelectorAll(".reglages label, .maj")) el.hidden = true;
  document.getElementById("connexion").hidden = false;
  document.getElementById("se-deconnecter").hidden = true;
  document.getElementById("qui").textContent = "";
  document.getElementById("erreur-connexion").textContent = message;
  document.body.dataset.pret = "connexion";
}

async function demarrer() {
  if (!jeton()) { connexion(); return; }
  try {
    const moi = await lire("/v1/moi");
    droits = moi.droits;
    document.body.dataset.droits = droits.join(" ");
    document.getElementById("qui").textContent = `${moi.sub} — ${moi.habilitations.join(", ") || "aucun rôle"}`;
    document.getElementById("connexion").hidden = true;
    document.getElementById("tableau").hidden = false;
    document.getElementById("se-deconnecter").hidden = false;
    for (const el of document.querySelectorAll("[data-droit]")) el.hidden = !droits.includes(el.dataset.droit);
    for (const el of document.querySelectorAll(".figures, .reglages label, .maj")) el.hidden = !droits.includes("lire-agregats");
    await personnel();
    if (!droits.includes("lire-agregats")) { document.body.dataset.pret = "oui"; return; }
    boucle();
  } catch (e) {
    if (e instanceof NonConnecte) connexion("Jeton refusé : " + e.message);
    else document.getElementById("maj").textContent = "erreur : " + e.message;
  }
}

async function boucle() {
  if (!jeton()) return;
  try { await territoires(); await rafraichir(); } catch (e) {
    if (e instanceof NonConnecte) { connexion("Session expirée : " + e.message); return; }
    document.getElementById("maj").textContent = "erreur : " + e.message;
  }
  setTimeout(boucle, 5000);
}

document.getElementById("territoire").addEventListener("change", rafraichir);
document.getElementById("se-connecter").addEventListener("click", () => {
  const t = document.getElementById("jeton").value.trim();
  if (!t) return;
  sessionStorage.setItem(CLE_JETON, t);
  document.getElementById("jeton").value = "";
  demarrer();
});
document.getElementById("se-deconnecter").addEventListener("click", () => connexion());
document.getElementById("actualiser-files").addEventListener("click", () => personnel().catch((e) => { document.getElementById("maj").textContent = "erreur : " + e.message; }));
demarrer();
