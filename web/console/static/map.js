/* The grid map (/console/map): Leaflet, served by the project itself. The page lists every grid with its
   figures without this script; here the same figures are drawn: boundaries coloured by tickets, points
   where coordinates are known, a grid's team and figures in its popup. */
(function () {
  "use strict";

  var holder = document.getElementById("grid-map");
  var source = document.getElementById("map-data");
  var note = document.getElementById("map-note");
  if (!holder || !source) return;

  function say(text) {
    holder.hidden = true;
    note.textContent = text;
    note.hidden = false;
  }

  if (typeof window.L === "undefined") {
    say("地图组件（Leaflet）未能加载，暂不能显示地图。下面是网格列表和数字。");
    return;
  }
  var L = window.L;
  var data = JSON.parse(source.textContent);
  var COLOURS = { overdue: "#cf222e", open: "#bf8700", clear: "#1a7f37" };

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function gridPopup(grid) {
    var box = el("div", null, "map-popup");
    box.appendChild(el("strong", grid.name));
    box.appendChild(el("div", grid.parent + " · " + grid.code, "muted"));
    box.appendChild(el("div", "工单 " + grid.tickets + " 件 · 超时 " + grid.overdue + " 件", "figures"));
    var team = el("ul", null, "team");
    (grid.team.length ? grid.team : [{ role: "网格团队", name: "未登记" }]).forEach(function (m) {
      team.appendChild(el("li", m.role + " " + m.name));
    });
    box.appendChild(team);
    var link = el("a", "查看该网格的工单");
    link.href = grid.queue_url;
    box.appendChild(link);
    return box;
  }

  function pointPopup(point) {
    var box = el("div", null, "map-popup");
    var link = el("a", point.number);
    link.href = point.url;
    box.appendChild(link);
    box.appendChild(el("div", point.category + " · " + point.status + (point.overdue ? " · 超时" : "")));
    box.appendChild(el("div", point.created + " 受理", "muted"));
    return box;
  }

  // Build every layer first, set the view from their extent, and only then draw: Leaflet clips paths to
  // the view, so a path added to a map that has none yet cannot be drawn.
  var bounds = L.latLngBounds([]);
  var byGrid = {};
  var drawn = [];
  data.grids.forEach(function (grid) {
    var colour = COLOURS[grid.state];
    var layer = null;
    if (grid.boundary) {
      layer = L.geoJSON(grid.boundary, {
        style: {
          color: colour, weight: 2, fillColor: colour, fillOpacity: grid.state === "clear" ? 0.12 : 0.3,
          className: "grid-area"
        }
      });
      bounds.extend(layer.getBounds());
    } else if (grid.lat !== null && grid.lng !== null) {
      layer = L.circleMarker([grid.lat, grid.lng], {
        radius: 11, color: colour, weight: 2, fillColor: colour, fillOpacity: 0.35, className: "grid-centre"
      });
      bounds.extend(layer.getLatLng());
    }
    if (!layer) return;
    layer.bindPopup(gridPopup(grid));
    drawn.push([layer, { "data-grid": grid.code, "data-state": grid.state }]);
    byGrid[grid.code] = layer;
  });
  data.points.forEach(function (point) {
    var marker = L.circleMarker([point.lat, point.lng], {
      radius: 5, color: "#fff", weight: 1.5, fillColor: point.overdue ? COLOURS.overdue : "#0969da", fillOpacity: 0.95,
      className: "ticket-point"
    }).bindPopup(pointPopup(point));
    drawn.push([marker, { "data-ticket": point.number }]);
    bounds.extend(marker.getLatLng());
  });

  if (!bounds.isValid()) {
    say("本区域的网格还没有边界或坐标（可在区域文件中补充 boundary 或 lat/lng），下面是网格列表和数字。");
    return;
  }
  var map = L.map(holder, { zoomControl: true, attributionControl: data.tiles.urls.length > 0 });
  if (map.attributionControl) map.attributionControl.setPrefix("Leaflet");
  map.fitBounds(bounds, { padding: [16, 16], maxZoom: 17 });
  data.tiles.urls.forEach(function (url) {
    L.tileLayer(url, {
      subdomains: data.tiles.subdomains || "abc",
      attribution: data.tiles.attribution || "",
      maxZoom: 18
    }).addTo(map);
  });
  if (!data.tiles.urls.length) holder.classList.add("no-tiles");
  drawn.forEach(function (item) {
    var layer = item[0].addTo(map);
    var parts = [];
    if (layer.eachLayer) layer.eachLayer(function (part) { parts.push(part); }); else parts.push(layer);
    parts.forEach(function (part) {
      var node = part.getElement && part.getElement();
      if (!node) return;
      Object.keys(item[1]).forEach(function (key) { node.setAttribute(key, item[1][key]); });
    });
  });
  holder.setAttribute("data-ready", "1");

  document.querySelectorAll("[data-focus-grid]").forEach(function (button) {
    button.addEventListener("click", function () {
      var layer = byGrid[button.getAttribute("data-focus-grid")];
      if (!layer) return;
      if (layer instanceof L.CircleMarker) map.setView(layer.getLatLng(), 16);
      else map.fitBounds(layer.getBounds(), { maxZoom: 17 });
      layer.openPopup();
      holder.scrollIntoView({ behavior: "smooth", block: "start" });
    });
  });
})();
