// Signing in to the playground: a form to log in or register, a sign-out button, and the bearer
// token on every request. Tokens stay in memory only (a reload signs out).

const session = { token: null, refreshToken: null, user: null };
let page = null;

function field(id, name, label, attributes) {
  const caption = page.element("label", "", label.text);
  caption.htmlFor = id;
  if (label.note) caption.append(" ", page.element("span", "muted", label.note));
  const input = page.element("input");
  Object.assign(input, { id, name, ...attributes });
  return [caption, input];
}

function submitButton(id, value, text, className) {
  const button = page.element("button", className, text);
  Object.assign(button, { type: "submit", id, value });
  return button;
}

// The sign-in panel (before the workspace) and the sign-out button (in the header).
function build() {
  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = "/playground/assets/signin.css";
  document.head.append(style);

  const section = page.element("section", "panel");
  section.id = "sign-in";
  section.hidden = true;
  section.setAttribute("aria-labelledby", "sign-in-title");
  const title = page.element("h2", "", "Sign in");
  title.id = "sign-in-title";
  const form = page.element("form");
  form.id = "sign-in-form";
  const buttons = page.element("div", "row");
  buttons.append(
    submitButton("log-in", "login", "Log in"),
    submitButton("register", "register", "Register", "secondary"),
  );
  form.append(
    ...field("email", "email", { text: "Email" }, { type: "email", autocomplete: "username", required: true }),
    ...field(
      "password",
      "password",
      { text: "Password" },
      { type: "password", autocomplete: "current-password", minLength: 8, required: true },
    ),
    ...field("full-name", "full_name", { text: "Full name", note: "(only to register)" }, { autocomplete: "name" }),
    buttons,
  );
  section.append(title, form);
  page.$("workspace").before(section);

  const signOutButton = page.element("button", "secondary", "Sign out");
  Object.assign(signOutButton, { type: "button", id: "sign-out", hidden: true });
  page.$("who").after(signOutButton);

  form.addEventListener("submit", signIn);
  signOutButton.addEventListener("click", signOut);
}

function showSignIn(message) {
  session.token = session.refreshToken = session.user = null;
  page.$("workspace").hidden = true;
  page.$("sign-out").hidden = true;
  page.$("who").textContent = "";
  page.$("sign-in").hidden = false;
  page.showNotice(message ?? "");
  page.$("email").focus();
}

async function signIn(event) {
  event.preventDefault();
  const $ = page.$;
  const action = event.submitter?.value === "register" ? "register" : "login";
  const email = $("email").value.trim();
  const body = { email, password: $("password").value };
  if (action === "register") body.full_name = $("full-name").value.trim() || email.split("@")[0];
  try {
    const response = await page.request("POST", `/auth/${action}`, body);
    const { data } = await response.json();
    session.token = data.access_token;
    session.refreshToken = data.refresh_token;
    session.user = data.user;
    $("password").value = "";
    page.enter();
  } catch (error) {
    page.showNotice(page.describe(error));
  }
}

async function signOut() {
  try {
    await page.request("POST", "/auth/logout");
  } catch {
    // the token is dropped either way
  }
  showSignIn("Signed out.");
}

async function refreshTokens() {
  const response = await fetch(page.API + "/auth/refresh", {
    method: "POST",
    headers: { Authorization: `Bearer ${session.refreshToken}` },
  });
  if (!response.ok) return false;
  const { data } = await response.json();
  session.token = data.access_token;
  session.refreshToken = data.refresh_token;
  return true;
}

export function install(playground) {
  page = playground;
  build();
  return {
    authorize(headers) {
      if (session.token) headers.Authorization = `Bearer ${session.token}`;
    },
    async refused(error, path, retried) {
      if (error.status !== 401) return false;
      if (error.code === "token_expired" && session.refreshToken && !retried && (await refreshTokens())) {
        return true;
      }
      if (!path.startsWith("/auth/")) showSignIn(page.describe(error)); // signed out, expired or revoked
      return false;
    },
    entering() {
      page.$("sign-in").hidden = true;
      page.$("sign-out").hidden = false;
      return `Signed in as ${session.user.email} (${session.user.role}).`;
    },
    begin() {
      showSignIn();
    },
  };
}
