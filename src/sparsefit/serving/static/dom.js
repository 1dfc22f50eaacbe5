/* DOM helpers: build HTML and SVG elements from plain objects. Styles go through the CSSOM only
 * (element.style): the page's CSP refuses style attributes. */

export const SVG_NS = "http://www.w3.org/2000/svg";

/** The first element matching a CSS selector. */
export const $ = (sel, root = document) => root.querySelector(sel);

/** Build a DOM element: h("div", {class: "x", "data-testid": "y", onclick: fn}, "text", child). */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  append(node, children);
  return node;
}

/** Build an SVG element (same signature as h). */
export function s(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setProps(node, props);
  append(node, children);
  return node;
}

/** Set attributes, listeners (on…: function), text and styles ({style: {…}}) on a node; null, undefined and false are skipped. */
export function setProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    // styles through the CSSOM only: the page's CSP refuses style attributes
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
}

/** Append children (nested arrays flattened; strings and numbers become text; null, undefined and false are skipped). */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Remove every child of a node; returns the node. */
export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}
